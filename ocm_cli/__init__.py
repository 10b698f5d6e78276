"""The ``ocm`` command: run the whole platform on one machine (``ocm serve``: the
Functions app's HTTP API and every trigger, on the embedded backend), and the
operator's tasks. It stands above the Functions app and is not deployed to Azure."""
