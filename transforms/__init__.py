"""Pure pandas transforms: DataFrame in, DataFrame out. No Django, no I/O."""
