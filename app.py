"""Entry point of the app (also the Hugging Face Space's ``app_file``).

    python app.py                                   # embedded default model, offline, http://127.0.0.1:7860
    MUSHROOM_MODEL=local-dir:/path/to/model python app.py
    MUSHROOM_MODEL=hf-hub:org/model python app.py   # needs the network (or a filled HF cache)
    MUSHROOM_EXTRA_MODELS=local-dir:/a,hf-hub:org/b python app.py   # adds a model selector

On a Space (``SPACE_ID`` is set) it listens on 0.0.0.0. ``GRADIO_SERVER_PORT`` picks the port.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mushroom_id.serving.ui import build_demo, launch  # noqa: E402

demo = build_demo()  # loads the model(s) once, at start

if __name__ == "__main__":
    launch(demo)
