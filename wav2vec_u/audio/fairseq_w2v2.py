"""fairseq wav2vec 2.0 checkpoints in plain torch: the encoder, the importer, the extractor.

fairseq does not import on Python 3.11, yet most wav2vec-U work starts from its ``.pt``
checkpoints. This module rebuilds the encoder from the config stored in the checkpoint and
loads its state dict, with no fairseq (or omegaconf) import::

    model, info = load_fairseq_checkpoint("wav2vec_vox_new.pt")      # eval mode, float32, CPU
    x, frame_mask = model(wav[None], layer=14)                        # (1, T, 1024)

    ex = FairseqExtractor("wav2vec_vox_new.pt", layer=14)            # what `w2vu extract` uses
    feats = ex(wav)                                                   # (T, 1024) float32 numpy

Semantics follow fairseq's ``extract_features(source, padding_mask, mask=False, layer=L)``
exactly (checked against fairseq's own outputs in ``tests/test_fairseq_parity.py``):

1. conv stack: Conv1d, then GroupNorm on layer 0 only (``extractor_mode=default``, Base) or a
   channel LayerNorm after every conv (``layer_norm``, Large/XLS-R), then exact GELU;
2. LayerNorm over the conv channels, ``post_extract_proj`` to the model width;
3. padded frames zeroed, weight-normed grouped positional conv (last frame dropped for even
   kernels), GELU, added to x; post-LN models (Base) then apply ``encoder.layer_norm``;
4. x padded with masked zero frames to a multiple of ``required_seq_len_multiple``;
5. blocks 0..L; post-LN ``x = LN(x + f(x))`` or pre-LN ``x = x + f(LN(x))``;
6. ``layer=L`` returns block L's output (no final LayerNorm); ``layer=None`` runs all blocks
   and applies ``encoder.layer_norm`` in pre-LN models only.

The waveform is layer-normalised over the whole utterance first when the checkpoint's task
config says ``normalize`` (Large LV-60, XLS-R). Fine-tuned (CTC) checkpoints
(``w2v_encoder.w2v_model.*`` keys, config under ``cfg.model.w2v_args``) are read too: their
encoder is the same module.
"""

from __future__ import annotations

import argparse
import ast
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.batching import pad_batch
from wav2vec_u.batching import torch_dtype
from wav2vec_u.io import sha256_file

log = logging.getLogger(__name__)

# State-dict entries that exist in pre-training checkpoints but play no part in features.
_UNUSED_PREFIXES = ("mask_emb", "quantizer.", "project_q.", "final_proj.", "project_inp.", "target_glu.",
                    "label_embs_concat", "w2v_encoder.proj.", "proj.")


@dataclass
class W2V2Arch:
    """The structural fields of fairseq's ``Wav2Vec2Config`` that features depend on."""

    conv_layers: list[tuple[int, int, int]]  # (channels, kernel, stride) per conv layer
    extractor_mode: str = "default"          # default: GroupNorm on layer 0 (Base); layer_norm: LN everywhere
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    conv_pos: int = 128
    conv_pos_groups: int = 16
    pos_conv_depth: int = 1
    layer_norm_first: bool = False           # False: post-LN blocks (Base); True: pre-LN (Large)
    activation_fn: str = "gelu"
    required_seq_len_multiple: int = 2
    crop_seq_to_multiple: int = 1
    layer_type: str = "transformer"
    normalize: bool = False                  # task.normalize: layer-norm the waveform first


def parse_conv_layers(text: str) -> list[tuple[int, int, int]]:
    """Evaluate fairseq's ``conv_feature_layers`` string (lists, tuples, ints, + and *) safely."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError(f"unsupported expression in conv_feature_layers: {ast.dump(node)}")

    try:
        value = ev(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot parse conv_feature_layers {text!r}: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(t, tuple) and len(t) == 3 for t in value):
        raise ValueError(f"conv_feature_layers {text!r} is not a list of (dim, kernel, stride) tuples")
    return [tuple(int(v) for v in t) for t in value]  # type: ignore[misc]


def conv_output_lengths(lengths: torch.Tensor | int, conv_layers: list[tuple[int, int, int]]):
    """Frames the conv stack yields for ``lengths`` samples: floor((n - k) / s) + 1 per layer."""
    for _, k, s in conv_layers:
        lengths = (lengths - k) // s + 1
    return lengths


# ----------------------------------------------------------------------------- modules
# Child names ("0", "2", "1") mirror fairseq's nn.Sequential indices so state dicts load as-is.

class _ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of a (B, C, T) tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.add_module("1", nn.LayerNorm(dim, elementwise_affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "1")(x.transpose(-2, -1)).transpose(-2, -1)


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, s: int, bias: bool, norm: str | None):
        super().__init__()
        self.add_module("0", nn.Conv1d(c_in, c_out, k, stride=s, bias=bias))
        if norm == "group":
            self.add_module("2", nn.GroupNorm(c_out, c_out, affine=True))
        elif norm == "layer":
            self.add_module("2", _ChannelLayerNorm(c_out))
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, "0")(x)
        if self.norm == "group":  # fairseq's Fp32GroupNorm: statistics in float32
            gn = getattr(self, "2")
            x = F.group_norm(x.float(), gn.num_groups, gn.weight.float(), gn.bias.float(), gn.eps).type_as(x)
        elif self.norm == "layer":
            x = getattr(self, "2")(x)
        return F.gelu(x)


class ConvFeatureExtractor(nn.Module):
    def __init__(self, arch: W2V2Arch):
        super().__init__()
        blocks, c_in = [], 1
        for i, (c, k, s) in enumerate(arch.conv_layers):
            if arch.extractor_mode == "layer_norm":
                norm = "layer"
            elif arch.extractor_mode == "default":
                norm = "group" if i == 0 else None
            else:
                raise ValueError(f"unsupported extractor_mode '{arch.extractor_mode}' (default or layer_norm)")
            blocks.append(_ConvBlock(c_in, c, k, s, arch.conv_bias, norm))
            c_in = c
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) samples -> (B, C, T) conv features."""
        x = wav.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x


class _WeightNormConv(nn.Module):
    """Grouped Conv1d whose weight is ``g * v / ||v||``, the norm over dims (0, 1) per kernel tap."""

    def __init__(self, dim: int, k: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, k))
        self.weight_v = nn.Parameter(torch.zeros(dim, dim // groups, k))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.k, self.groups = k, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.weight_v
        w = self.weight_g * v / v.float().norm(dim=(0, 1), keepdim=True).type_as(v)
        return F.conv1d(x, w, self.bias, padding=self.k // 2, groups=self.groups)


class PositionalConv(nn.Module):
    def __init__(self, dim: int, k: int, groups: int):
        super().__init__()
        self.add_module("0", _WeightNormConv(dim, k, groups))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C) positional term (not yet added)."""
        y = getattr(self, "0")(x.transpose(1, 2))
        if self.k % 2 == 0:  # "same" padding for even kernels: drop the extra last frame
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unsupported activation_fn '{name}' in checkpoint (gelu, gelu_accurate, relu, linear)")


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C); key_padding_mask (B, T), True at padded keys."""
        b, t, c = x.shape
        q = (self.q_proj(x) * self.head_dim ** -0.5).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-2, -1)  # (B, H, T, T)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1).type_as(scores)
        out = (probs @ v).transpose(1, 2).reshape(b, t, c)
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    def __init__(self, arch: W2V2Arch):
        super().__init__()
        d = arch.encoder_embed_dim
        self.self_attn = SelfAttention(d, arch.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, arch.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(arch.encoder_ffn_embed_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.pre_ln = arch.layer_norm_first
        self.act = _activation(arch.activation_fn)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding_mask)
            return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding_mask))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class Encoder(nn.Module):
    def __init__(self, arch: W2V2Arch):
        super().__init__()
        self.arch = arch
        self.pos_conv = PositionalConv(arch.encoder_embed_dim, arch.conv_pos, arch.conv_pos_groups)
        self.layer_norm = nn.LayerNorm(arch.encoder_embed_dim)
        self.layers = nn.ModuleList(EncoderLayer(arch) for _ in range(arch.encoder_layers))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None, layer: int | None) -> torch.Tensor:
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x)
        if not self.arch.layer_norm_first:
            x = self.layer_norm(x)
        # fairseq pads to a multiple of required_seq_len_multiple with masked zero frames
        t = x.shape[1]
        mult = max(1, self.arch.required_seq_len_multiple)
        pad = (-t) % mult
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
            if padding_mask is None:
                padding_mask = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
                padding_mask[:, t:] = True
            else:
                padding_mask = F.pad(padding_mask, (0, pad), value=True)
        last = len(self.layers) - 1 if layer is None else layer
        for i in range(last + 1):
            x = self.layers[i](x, padding_mask)
        if pad:
            x = x[:, :t]
        if layer is None and self.arch.layer_norm_first:
            x = self.layer_norm(x)
        return x


class Wav2Vec2Encoder(nn.Module):
    """The feature path of fairseq's ``Wav2Vec2Model`` (no quantiser, no masking, no heads)."""

    def __init__(self, arch: W2V2Arch):
        super().__init__()
        if arch.layer_type != "transformer":
            raise ValueError(f"unsupported layer_type '{arch.layer_type}' (only 'transformer' blocks are implemented)")
        if arch.pos_conv_depth != 1:
            raise ValueError(f"unsupported pos_conv_depth={arch.pos_conv_depth} (only 1 is implemented)")
        self.arch = arch
        c = arch.conv_layers[-1][0]
        self.feature_extractor = ConvFeatureExtractor(arch)
        self.layer_norm = nn.LayerNorm(c)
        self.post_extract_proj = nn.Linear(c, arch.encoder_embed_dim) if c != arch.encoder_embed_dim else None
        self.encoder = Encoder(arch)

    @property
    def num_layers(self) -> int:
        return self.arch.encoder_layers

    def frame_padding_mask(self, padding_mask: torch.Tensor, num_frames: int) -> torch.Tensor | None:
        """Sample mask (B, N) -> frame mask (B, T), True at frames t >= conv_out(valid length)."""
        if not bool(padding_mask.any()):
            return None
        lengths = conv_output_lengths((~padding_mask).long().sum(-1), self.arch.conv_layers)
        return torch.arange(num_frames, device=padding_mask.device)[None, :] >= lengths[:, None]

    def forward(self, source: torch.Tensor, padding_mask: torch.Tensor | None = None,
                layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """source (B, N) waveform (already normalised if the task says so); padding_mask (B, N),
        True at padded samples. Returns x (B, T, D) and the frame padding mask (B, T) or None."""
        if layer is not None and not 0 <= layer < self.num_layers:
            raise ValueError(f"layer={layer} is out of range: this model has {self.num_layers} blocks (0..{self.num_layers - 1})")
        feats = self.feature_extractor(source).transpose(1, 2)  # (B, T, C)
        feats = F.layer_norm(feats.float(), feats.shape[-1:], self.layer_norm.weight.float(),
                             self.layer_norm.bias.float(), self.layer_norm.eps).type_as(feats)
        frame_mask = self.frame_padding_mask(padding_mask, feats.shape[1]) if padding_mask is not None else None
        crop = feats.shape[1] % max(1, self.arch.crop_seq_to_multiple)
        if crop:
            feats = feats[:, :-crop]
            frame_mask = frame_mask[:, :-crop] if frame_mask is not None else None
        x = self.post_extract_proj(feats) if self.post_extract_proj is not None else feats
        return self.encoder(x, frame_mask, layer), frame_mask


# ----------------------------------------------------------------------------- checkpoint import

def _plain(obj: Any) -> Any:
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    return obj


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load`` with ``weights_only=True`` (no code runs from the file); old checkpoints that
    store an ``argparse.Namespace`` under ``args`` are allowed too."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fairseq checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, objects outside the allow-list
        raise ValueError(f"cannot read fairseq checkpoint {path}: {exc}. It must be a fairseq .pt file "
                         "(dict with 'model' and 'cfg' or 'args')") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a fairseq checkpoint: no 'model' state dict inside")
    return state


def arch_from_checkpoint(state: dict, path: str | Path = "<checkpoint>") -> tuple[W2V2Arch, dict[str, torch.Tensor]]:
    """The architecture (from ``cfg`` or legacy ``args``) and the encoder's state dict."""
    cfg = _plain(state.get("cfg"))
    if cfg is not None:
        model_cfg, task_cfg = dict(_plain(cfg.get("model")) or {}), dict(_plain(cfg.get("task")) or {})
    elif state.get("args") is not None:
        args = _plain(state["args"])
        model_cfg, task_cfg = dict(args), dict(args)
    else:
        raise ValueError(f"{path}: checkpoint has neither 'cfg' nor 'args', cannot tell the architecture")
    sd = state["model"]
    prefix = "w2v_encoder.w2v_model."
    if any(k.startswith(prefix) for k in sd):  # fine-tuned CTC model: the pre-trained config is nested
        w2v_args = _plain(model_cfg.get("w2v_args"))
        if not w2v_args:
            raise ValueError(f"{path}: fine-tuned checkpoint without model.w2v_args")
        w2v_args = dict(w2v_args)
        if "model" in w2v_args:
            inner_model, inner_task = dict(_plain(w2v_args["model"])), dict(_plain(w2v_args.get("task")) or {})
        else:
            inner_model, inner_task = w2v_args, w2v_args
        model_cfg = inner_model
        task_cfg = {"normalize": task_cfg.get("normalize", inner_task.get("normalize", False))}
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    name = model_cfg.get("_name") or model_cfg.get("arch") or "wav2vec2"
    if "wav2vec2" not in str(name) and "conv_feature_layers" not in model_cfg:
        raise ValueError(f"{path}: model '{name}' is not a wav2vec 2.0 model")
    arch = W2V2Arch(conv_layers=parse_conv_layers(model_cfg.get("conv_feature_layers",
                                                                 "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2")))
    for f in ("extractor_mode", "conv_bias", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
              "encoder_attention_heads", "conv_pos", "conv_pos_groups", "pos_conv_depth", "layer_norm_first",
              "activation_fn", "required_seq_len_multiple", "crop_seq_to_multiple", "layer_type"):
        if model_cfg.get(f) is not None:
            setattr(arch, f, type(getattr(arch, f))(model_cfg[f]))
    arch.normalize = bool(task_cfg.get("normalize", False))
    # torch.nn.utils.parametrizations.weight_norm names g and v differently
    renamed = {}
    for k, v in sd.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        renamed[k] = v
    return arch, renamed


def load_fairseq_checkpoint(path: str | Path) -> tuple[Wav2Vec2Encoder, W2V2Arch]:
    """Build the encoder a fairseq wav2vec 2.0 checkpoint describes and load its weights (strictly:
    every encoder parameter must be present, every extra entry must be a known non-feature part)."""
    state = read_checkpoint(path)
    arch, sd = arch_from_checkpoint(state, path)
    model = Wav2Vec2Encoder(arch)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own and not k.startswith(_UNUSED_PREFIXES)]
    if missing or unexpected:
        raise ValueError(f"{path}: state dict does not match the wav2vec 2.0 structure its config describes "
                         f"(missing: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                         f"unexpected: {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    for k, v in own.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise ValueError(f"{path}: parameter {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}")
    model.load_state_dict({k: sd[k].float() for k in own}, strict=True)
    model.eval()
    return model, arch


def normalize_waveform(wav: torch.Tensor) -> torch.Tensor:
    """fairseq's ``F.layer_norm(source, source.shape)``: zero mean, unit variance, eps 1e-5."""
    return F.layer_norm(wav.float(), wav.shape[-1:])


class FairseqExtractor:
    """``fairseq:<path.pt>`` features: block ``layer`` of a wav2vec 2.0 checkpoint, fairseq semantics."""

    def __init__(self, path: str | Path, layer: int | None = 14, device: str = "cpu", dtype: str = "float32",
                 normalize: bool | None = None):

        self.path = Path(path).expanduser()
        self.name = f"fairseq:{path}"
        model, arch = load_fairseq_checkpoint(self.path)
        if layer is not None and not 0 <= layer < arch.encoder_layers:
            raise ValueError(f"layer={layer} is out of range for {self.path}: it has {arch.encoder_layers} "
                             f"transformer blocks (layer 0..{arch.encoder_layers - 1}; null = final output)")
        self.layer, self.arch = layer, replace(arch)  # a copy: the model's own arch is truncated below
        if layer is not None:  # later blocks are never run: drop them to save memory
            model.encoder.layers = model.encoder.layers[: layer + 1]
            model.arch.encoder_layers = layer + 1
        self.normalize = arch.normalize if normalize is None else normalize
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.model = model.to(self.device, self.dtype)
        self.dim = arch.encoder_embed_dim
        self.frame_rate = 16000 / math.prod(s for _, _, s in arch.conv_layers)
        # GroupNorm over time (Base's conv layer 0) sees the padding: such models run one by one
        self.batch_invariant = arch.extractor_mode == "layer_norm"
        self._sha: str | None = None

    def num_frames(self, num_samples: int) -> int:
        t = int(conv_output_lengths(num_samples, self.arch.conv_layers))
        return t - t % max(1, self.arch.crop_seq_to_multiple)

    @torch.inference_mode()
    def extract_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        if not wavs:
            return []
        if len(wavs) > 1 and not self.batch_invariant:
            return [self.extract_batch([w])[0] for w in wavs]
        src, lengths = pad_batch(wavs, normalize=normalize_waveform if self.normalize else None)
        lengths = lengths.tolist()
        if min(lengths) < self.arch.conv_layers[0][1] or min(self.num_frames(n) for n in lengths) < 1:
            raise ValueError(f"utterance of {min(lengths)} samples is too short for {self.name} (no frame)")
        mask = None
        if len(set(lengths)) > 1:
            mask = torch.arange(src.shape[1])[None, :] >= torch.tensor(lengths)[:, None]
            mask = mask.to(self.device)
        x, _ = self.model(src.to(self.device, self.dtype), mask, layer=self.layer)
        x = x.float().cpu().numpy()
        return [np.ascontiguousarray(x[i, : self.num_frames(n)]) for i, n in enumerate(lengths)]

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        return self.extract_batch([wav])[0]

    def describe(self) -> dict:

        if self._sha is None:
            self._sha = sha256_file(self.path)
        return {"extractor": self.name, "model_path": str(self.path.resolve()), "model_sha256": self._sha,
                "layer": self.layer, "layer_semantics": "fairseq extract_features(layer=L): output of block L (0-based), no final LayerNorm",
                "normalize": self.normalize, "dim": self.dim, "frame_rate": self.frame_rate,
                "dtype": str(self.dtype).replace("torch.", ""), "arch": asdict(self.arch)}
