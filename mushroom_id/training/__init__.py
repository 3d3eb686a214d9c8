"""Training and evaluation engine behind train.py and python -m mushroom_id.evaluate."""
