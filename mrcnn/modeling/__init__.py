"""The network: backbone, FPN, RPN and heads, TF twins of the box ops, losses, custom layers,
and the builder that maps a Config to the graph of each mode."""
