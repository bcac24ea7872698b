"""The pure core: the notice's rules R1–R12 as functions of frames and plain values; no I/O, no clock."""
