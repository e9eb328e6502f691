from config import load_config_or_exit
from scanner import create_app

app = create_app(load_config_or_exit())
