"""espeak-ng speech synthesis through its C library, with phoneme events (timings).

    engine = Espeak()                                     # loads libespeak-ng, 22050 Hz output
    utt = engine.synthesize("in the beginning", voice="en-us+m3", rate=160, pitch=40)
    utt.audio                     # int16 samples at utt.sample_rate (22050)
    utt.phonemes                  # [("ɪ", 0.0, 0.066), ("n", 0.066, 0.133), ...] seconds, IPA names

Phoneme events come from ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA``:
espeak-ng reports each phoneme it renders with its sample position, so a phone's start is
its event and its end the next event (pauses are events with an empty name and end the
phone before them). Where the library cannot be loaded, :func:`synthesize_cli` runs the
``espeak-ng`` program instead and gives audio without timings.

The library keeps state between utterances in one process (echo buffer, noise generator:
espeak-ng 1.51 calls ``rand()``), so the same text gives slightly different samples
depending on what was spoken before. Callers that need reproducible audio (the corpus
does) start each batch in a fresh process and call :meth:`Espeak.seed` first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

# espeak_AUDIO_OUTPUT and option flags, from espeak-ng's speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1   # words per minute, 80-450, espeak default 175
_PARAM_PITCH = 3  # base pitch 0-100, default 50
_PARAM_RANGE = 4  # pitch range (intonation) 0-100, default 50


class EspeakError(RuntimeError):
    """espeak-ng missing or failing; the message says what to install."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Utterance:
    audio: np.ndarray                      # int16, mono
    sample_rate: int
    phonemes: list[tuple[str, float, float]] | None = field(default=None)  # (IPA name, start s, end s)


def _find_library() -> str:
    for name in ("libespeak-ng.so.1", ctypes.util.find_library("espeak-ng"), "libespeak-ng.dylib"):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    raise EspeakError("libespeak-ng not found: install espeak-ng (Debian: apt-get install espeak-ng; "
                      "scripts/setup.sh does it)")


class Espeak:
    """One espeak-ng instance per process (the C library is a process-wide singleton)."""

    _instance: "Espeak | None" = None

    def __new__(cls) -> "Espeak":
        if cls._instance is None:
            engine = super().__new__(cls)
            engine._init()  # may raise: then no half-initialised instance is kept
            cls._instance = engine
        return cls._instance

    def _init(self) -> None:
        lib = ctypes.CDLL(_find_library())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if sr <= 0:
            raise EspeakError("espeak_Initialize failed: is espeak-ng-data installed? (apt-get install espeak-ng)")
        self.lib = lib
        self.sample_rate = int(sr)
        data_path = ctypes.c_char_p()
        self.version = lib.espeak_Info(ctypes.byref(data_path)).decode()
        self.data_path = Path(data_path.value.decode()) if data_path.value else None
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the library holds a raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"))

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "replace")
                self._events.append((name, int(ev.sample)))
            i += 1
        return 0  # 0 = continue synthesis

    def seed(self, seed: int) -> None:
        """Seed the C library's ``rand()``, which espeak-ng 1.51 uses for noise and breath."""
        self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))

    def variants(self) -> list[str]:
        """Names of the installed voice variants (``m3``, ``f2``, ``klatt4``, ...)."""
        if self.data_path is None or not (self.data_path / "voices" / "!v").is_dir():
            return []
        return sorted(p.name for p in (self.data_path / "voices" / "!v").iterdir() if p.is_file())

    def set_voice(self, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice '{voice}' (see `espeak-ng --voices` and "
                              "`espeak-ng --voices=variant`)")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)

    def synthesize(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> Utterance:
        self.set_voice(voice, rate, pitch, pitch_range)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        if self.lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None) != 0:
            raise EspeakError(f"espeak_Synth failed for {text!r}")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Utterance(audio, self.sample_rate, phoneme_spans(self._events, len(audio), self.sample_rate))


def phoneme_spans(events: list[tuple[str, int]], num_samples: int, sample_rate: int) -> list[tuple[str, float, float]]:
    """(name, start, end) in seconds for each named phoneme; a phone ends at the next event of any kind."""
    spans = []
    for i, (name, start) in enumerate(events):
        if not name:
            continue  # pauses and stress/boundary events have no name
        end = events[i + 1][1] if i + 1 < len(events) else num_samples
        spans.append((name, start / sample_rate, max(end, start) / sample_rate))
    return spans


def synthesize_cli(text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> Utterance:
    """The same through the ``espeak-ng`` program: audio only, no phoneme timings."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng is not installed (Debian: apt-get install espeak-ng; scripts/setup.sh does it)")
    cmd = [exe, "--stdout", "-v", voice, "-s", str(rate), "-p", str(pitch), "-b", "1", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise EspeakError(f"espeak-ng failed for voice '{voice}': {proc.stderr.decode(errors='replace').strip()}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="int16")
    return Utterance(np.asarray(audio, np.int16), int(sr), None)
