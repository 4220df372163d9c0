"""dlib's networks read from their files and run on ONNX Runtime (see runtime.py)."""
