"""``harness-play``: TensorFlow Playground's page, driven by the harness's compiled engine.

- :mod:`harness.play.settings`: the page's controls (the URL's query), checked and turned into
  harness configs, and the commands that reproduce a screen as a sweep;
- :mod:`harness.play.session`: one page's training, every member of every compared value at
  once (``GroupProgram`` per compile group, stepped in lockstep), as snapshots;
- :mod:`harness.play.server`: the Starlette app (JSON API, Server-Sent Events, static page);
- :mod:`harness.play.cli`: the ``harness-play`` command.
"""
