"""Training: synthetic data, example preparation and the paper-protocol trainer.

Data:     distortions (KADID's 25 types), weak_labels (weak-v1; weak-v0 kept), synthetic (the
          generator)
Examples: prepare (splits, Parquet examples), examples (fetch + check one row's bytes)
Training: patch_sampling (seeded crops), petastorm_source (a rank's batches), loop (``fit``:
          DDP-aware epochs, checkpoints, resume), checkpoints, run (``train_worker``: one
          process of a run), options (the command-line flags ``deepiqa train`` and
          ``jobs/train.py`` share)
"""
