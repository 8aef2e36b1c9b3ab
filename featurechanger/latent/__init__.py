"""Latent arithmetic: attribute vectors from one encoding pass, and edits z' = z + s * v."""
