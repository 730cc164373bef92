"""The chaos suite: a real cluster under worker kills, Redis restarts and platform redeliveries.

``plan`` draws the seeded schedule, ``traffic`` sends it through the platform simulators and the web
chat, ``faults`` injects the failures, ``score`` counts what was lost, duplicated or misordered,
``run`` puts them together within a time bound. ``bench/chaos.py`` is the full-size command line;
``test_chaos.py`` is the short form CI runs.
"""
