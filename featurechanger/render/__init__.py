"""Pictures: labelled sheets (feature grids), looping GIFs, and full-resolution composition."""
