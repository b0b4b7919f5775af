"""Judge validity tooling: accuracy on labelled pairs, surface baselines, probe fitting, start-up checks."""
