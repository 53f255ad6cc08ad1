"""From shards to a training set: selection, mixing with general data, decontamination, the card, Hub push.

Imports storage, the database and service's shared vocabulary; never api, cli or workers.
"""
