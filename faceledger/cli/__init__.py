"""The command line interface: ``faceledger --help``."""
