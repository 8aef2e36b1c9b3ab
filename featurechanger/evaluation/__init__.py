"""Measuring edits: an attribute classifier, the AttGAN/STGAN protocol, and counterfactual twins."""
