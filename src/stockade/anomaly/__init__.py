"""Anomaly models: how unusual a sequence of events is for what was learned as normal.

* :mod:`.vocab`, :mod:`.ngram`: symbols to small ids, and bounded n-gram counts (the training state);
* :mod:`.smoothed`: the interpolated Kneser-Ney n-gram model (the default), scoring a sequence by
  its mean surprisal in bits per symbol;
* :mod:`.stide`: STIDE (the unseen n-gram rate), the baseline;
* :mod:`.threshold`: the alert threshold, learned from normal sequences only;
* :mod:`.modelfile`: the model file (versioned JSON, optionally gzip; never pickle);
* :mod:`.adfa`: reading ADFA-LD traces; :mod:`.metrics`: AUC and detection at a false-alarm rate.

See docs/anomaly.md.
"""
