"""Training and prediction around the network: the training model, run directories and
checkpoints, training callbacks, the predictor (mold, run, unmold)."""
