"""The synthetic speech corpus used by the demo and the tests (espeak-ng voices, reference phones).

    from wav2vec_u.synth.corpus import SynthConfig, synthesize_corpus
    synthesize_corpus("data/sentences/en.txt", "out/synth", SynthConfig(num_train=200))

``espeak.py`` wraps libespeak-ng (audio + phoneme events), ``corpus.py`` builds the corpus,
``command.py`` is ``w2vu synth``.
"""
