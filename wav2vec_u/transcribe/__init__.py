"""Transcription of long field recordings: ``w2vu transcribe MODEL INPUT... --out DIR``.

    from wav2vec_u.transcribe.transcribe import TranscribeConfig, transcribe_archive
    transcribe_archive("run/st/ctc.pt", ["recordings/"], "out/transcripts", TranscribeConfig(),
                       features_dir="out/frames")

- :mod:`.stream`: windows of any soundfile-readable file, mono at 16 kHz, without loading it whole;
- :mod:`.chunks`: voice-activity chunks of a recording, at most ``max_chunk_s`` long;
- :mod:`.transcribe`: the model with its own feature pipeline, per-chunk decoding, the archive job;
- :mod:`.exports`: TextGrid, EAF, CTM, SRT and CSV files of one recording.
"""
