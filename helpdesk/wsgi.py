"""The WSGI entry point: ``gunicorn 'helpdesk.wsgi:app'``."""

from helpdesk.app import create_app

app = create_app()
