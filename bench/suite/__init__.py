"""The side-by-side benchmark suite behind `bench/compare.py`: ToRouter, the floor, nginx direct,
the LiteLLM proxy and Portkey's gateway on one static upstream, in one run."""
