"""One module per benchmark suite, each defining `SUITE` and `build`."""
