"""The decipherment method: statistics matching + trigram decipherment HMM (w2vu decipher)."""
