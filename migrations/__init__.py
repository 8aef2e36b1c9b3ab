"""Alembic migrations of featurechanger's schema; shipped as a package so installs find them."""
