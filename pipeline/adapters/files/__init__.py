"""Files: the scenario reader, the changes file, the output writers and what keeps a written file safe."""
