"""Hugging Face speech encoders (Wav2Vec2, XLS-R, MMS, HuBERT, WavLM) as frame feature extractors.

    ex = HFExtractor("facebook/wav2vec2-large-lv60", layer=14)     # hub id (downloads once)
    ex = HFExtractor("/models/my-w2v2", layer=14)                   # a save_pretrained directory
    feats = ex(wav)                                                  # (T, hidden_size) float32

Layer semantics are fairseq's, whatever the architecture: ``layer=L`` is the output of
transformer block L (0-based) with no final encoder LayerNorm. We take it with a forward hook on
``encoder.layers[L]`` and drop the blocks after L, so they are never computed.

Mapping to Hugging Face's ``output_hidden_states=True``: ``hidden_states[0]`` is the input of
block 0 (after the positional conv, and after the encoder LayerNorm in post-LN models), so
``layer=L`` is ``hidden_states[L+1]`` (checked by ``tests/test_hf_features.py`` with transformers 5). Caveat
for older versions: in pre-LN models ("stable layer norm": Large, XLS-R, MMS) transformers 4.x
applies the final LayerNorm to the last entry, so there ``hidden_states[num_layers]`` is
``LN(layer=num_layers-1)``; the hook is not affected. ``layer=None`` gives
``last_hidden_state`` (all blocks, plus the final LayerNorm of pre-LN models), as fairseq's
``layer=None`` does.

The waveform is normalised per utterance (zero mean, unit variance) when the model's
``preprocessor_config.json`` says ``do_normalize`` (the Hugging Face default when the file is
absent). Models with GroupNorm in the conv stack (``feat_extract_norm="group"``: Base sizes) see
padding, so they run one utterance at a time; LayerNorm models are batched with an attention mask.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from wav2vec_u.batching import pad_batch
from wav2vec_u.batching import torch_dtype
from wav2vec_u.io import sha256_file, sha256_json


def _zero_mean_unit_var(x: torch.Tensor) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, per utterance."""
    return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)

log = logging.getLogger(__name__)


def _encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    enc = getattr(model, "encoder", None)
    layers = getattr(enc, "layers", None)
    if isinstance(layers, torch.nn.ModuleList):
        return layers
    raise ValueError(f"{type(model).__name__} has no encoder.layers: not a wav2vec 2.0-style speech encoder "
                     "(supported: Wav2Vec2, XLS-R, MMS, HuBERT, WavLM, data2vec-audio)")


def _set_encoder_layers(model: torch.nn.Module, layers: torch.nn.ModuleList) -> None:
    model.encoder.layers = layers


def weights_sha256(folder: Path | None) -> str | None:
    """sha256 over the weight files of a model folder (name-sorted), None without a folder."""

    if folder is None:
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt"))
    return sha256_json([[p.name, sha256_file(p)] for p in files])


class HFExtractor:
    """``hf:<id-or-dir>`` features: block ``layer`` of a Hugging Face speech encoder."""

    def __init__(self, name_or_path: str, layer: int | None = 14, device: str = "cpu", dtype: str = "float32",
                 normalize: bool | None = None):
        try:
            import transformers
            from transformers import AutoConfig, AutoModel

            transformers.utils.logging.disable_progress_bar()
        except ImportError:
            raise ValueError("hf:<model> extractors need transformers: pip install 'wav2vec-u[transformers]'") from None

        self.source = name_or_path
        self.name = f"hf:{name_or_path}"
        local = Path(name_or_path).expanduser()
        self.local_dir = local if local.is_dir() else None
        if self.local_dir is None and (name_or_path.startswith((".", "/", "~")) or local.suffix):
            raise FileNotFoundError(f"Hugging Face model directory not found: {local}")
        ref = str(self.local_dir) if self.local_dir else name_or_path
        try:
            config = AutoConfig.from_pretrained(ref, local_files_only=self.local_dir is not None)
            model = AutoModel.from_pretrained(ref, local_files_only=self.local_dir is not None)
        except OSError as exc:
            raise ValueError(f"cannot load Hugging Face model '{name_or_path}': {exc}") from None
        self.config = config
        layers = _encoder_layers(model)
        self.num_layers = len(layers)
        if layer is not None and not 0 <= layer < self.num_layers:
            raise ValueError(f"layer={layer} is out of range for {name_or_path}: it has {self.num_layers} "
                             f"transformer blocks (layer 0..{self.num_layers - 1}; null = final output)")
        self.layer = layer
        self._captured: torch.Tensor | None = None
        if layer is not None:
            _set_encoder_layers(model, torch.nn.ModuleList(list(layers)[: layer + 1]))
            layers[layer].register_forward_hook(self._hook)
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.model = model.to(self.device, self.dtype).eval()
        self.dim = int(config.hidden_size)
        strides = getattr(config, "conv_stride", None) or [5, 2, 2, 2, 2, 2, 2]
        self.frame_rate = 16000 / float(np.prod(strides))
        self.normalize = self._read_normalize() if normalize is None else normalize
        self.batch_invariant = getattr(config, "feat_extract_norm", "group") == "layer"
        self._sha: str | None = None

    def _hook(self, module, inputs, output) -> None:
        self._captured = output[0] if isinstance(output, (tuple, list)) else output

    def _read_normalize(self) -> bool:
        if self.local_dir is not None:
            f = self.local_dir / "preprocessor_config.json"
            if f.is_file():
                return bool(json.loads(f.read_text()).get("do_normalize", True))
            return True
        try:
            from transformers import AutoFeatureExtractor

            return bool(getattr(AutoFeatureExtractor.from_pretrained(self.source), "do_normalize", True))
        except (OSError, ValueError):
            return True

    def num_frames(self, num_samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(torch.tensor(num_samples)))

    @torch.inference_mode()
    def extract_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        if not wavs:
            return []
        if len(wavs) > 1 and not self.batch_invariant:
            return [self.extract_batch([w])[0] for w in wavs]
        src, lengths = pad_batch(wavs, normalize=_zero_mean_unit_var if self.normalize else None)
        lengths = lengths.tolist()
        if min(self.num_frames(n) for n in lengths) < 1:
            raise ValueError(f"utterance of {min(lengths)} samples is too short for {self.name} (no frame)")
        kwargs = {}
        if len(set(lengths)) > 1:
            kwargs["attention_mask"] = (torch.arange(src.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long().to(self.device)
        self._captured = None
        out = self.model(src.to(self.device, self.dtype), **kwargs)
        x = out.last_hidden_state if self.layer is None else self._captured
        if x is None:
            raise RuntimeError(f"{self.name}: the hook on block {self.layer} did not fire")
        x = x.float().cpu().numpy()
        return [np.ascontiguousarray(x[i, : self.num_frames(n)]) for i, n in enumerate(lengths)]

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        return self.extract_batch([wav])[0]

    def _hub_snapshot(self) -> Path | None:
        """The local cache folder of a hub model (already downloaded by from_pretrained)."""
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.source, local_files_only=True,
                                          revision=getattr(self.config, "_commit_hash", None)))
        except Exception:  # not cached the usual way: fall back to the commit hash
            return None

    def describe(self) -> dict:
        if self._sha is None:
            folder = self.local_dir or self._hub_snapshot()
            if folder is not None:
                self._sha = weights_sha256(folder)
            else:
                self._sha = "hub:" + str(getattr(self.config, "_commit_hash", None) or "unknown")
        return {"extractor": self.name, "model_path": str(self.local_dir.resolve()) if self.local_dir else self.source,
                "model_sha256": self._sha, "layer": self.layer,
                "layer_semantics": "fairseq extract_features(layer=L): output of block L (0-based), no final LayerNorm; = HF hidden_states[L+1] (see docs)",
                "num_layers": self.num_layers, "normalize": self.normalize, "dim": self.dim,
                "frame_rate": self.frame_rate, "model_type": getattr(self.config, "model_type", None),
                "dtype": str(self.dtype).replace("torch.", "")}
