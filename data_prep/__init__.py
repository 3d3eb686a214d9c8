"""Data preparation: the stages that build the species catalog and the image dataset.

Run a stage with ``python -m data_prep <stage>`` (``python -m data_prep --help`` lists them).
Each stage is one module with ``add_arguments(parser)`` and ``run(args)``.
"""
