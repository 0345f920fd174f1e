"""AudioLDM conditioned on a CLAP (base, T-CLAP, or any CLAP directory): encoders, pipeline assembly, training."""
