"""The baseline of bench/reads.py: Flask answering a small JSON body and nothing else, served by the
same gunicorn settings (gunicorn.conf.py) as the service. Not a benchmark itself."""

from flask import Flask

app = Flask(__name__)


@app.get("/status")
def status():
    return {"id": "00000000-0000-0000-0000-000000000000", "status": "completed", "stage": "done"}
