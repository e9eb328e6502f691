from config import load_config_or_exit
from scanner import create_app

flask_app = create_app(load_config_or_exit())
celery = flask_app.extensions["celery"]
