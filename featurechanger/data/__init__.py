"""Data: CelebA readers (both layouts), synthetic faces, shards and single-image decoding.

Modules: celeba (read/check/write annotations), faces (the synthetic face model and renderer),
synth (write a synthetic dataset), images (crop + draft + resize of one photo), shards (build
and read shard sets), parallel (process pool and progress bar).
"""
