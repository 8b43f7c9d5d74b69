"""Networks: the visual concrete (ANN) and semantic abstract (SNN) encoders, text encoder,
adapter, fusion encoder and heads, assembled by `factory.build_model` into an `ASHNet`."""
