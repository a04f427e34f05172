"""wav2vec-U: unsupervised speech recognition without fairseq, Kaldi or flashlight."""

__version__ = "0.1.0"
