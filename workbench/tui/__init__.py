"""The workbench screen (Textual). The only part of repro-tui that imports Textual.

``app.make_app(ws)`` builds the screen for a workspace (the CLI, the tests and the
screenshot script all use it); ``serve.serve(path, port)`` serves it in a browser.
"""
