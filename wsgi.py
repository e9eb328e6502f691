from scanner import create_app

app = create_app()
