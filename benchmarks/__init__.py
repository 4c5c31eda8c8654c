"""Side-by-side timings of arraykit against its peers, on every backend in backends/."""
