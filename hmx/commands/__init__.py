"""Front ends: argparse, printing, exit codes. Nothing in hmx imports this package."""
