"""Training and prediction around the network: the training model (`trainer`), the training
run (`train_loop`), callbacks (`callbacks/`, checkpoint writers in `callbacks.checkpoints`),
run directories and checkpoint names (`runs`), weight loading (`weights`), mAP during
training (`mean_ap`) and the predictor (mold, run, unmold)."""
