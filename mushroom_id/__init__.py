"""mushroom_id: the core package shared by the app, training and data preparation.

It holds the species catalog, model loading, preprocessing, prediction with
safety logic, and metrics. Entry points (app.py, train.py, data_prep/) stay thin.
"""

__version__ = "0.1.0"
