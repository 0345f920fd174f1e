"""Temporal-contrastive data: sound libraries, mixed-up clips, negative captions, loaders."""
