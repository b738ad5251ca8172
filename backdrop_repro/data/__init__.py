"""The GP datasets: class recipes, building and caching, the on-disk format, the Zenodo record.

* :mod:`.recipes` : ``Recipe``, ``PAPER``, ``SMOKE``, ``split_recipe``, ``class_spectrum``;
* :mod:`.datasets` : generating and caching datasets, resource checks, the ``generate`` command;
* :mod:`.files` : the verified on-disk format (``write_dataset``, ``read_dataset``, ``GPDataset``);
* :mod:`.zenodo` : the authors' record through pooch (download, extraction, conversion, ``fetch``);
* :mod:`.safe_pickle` : the restricted unpickler and the layout check of the authors' pickle.
"""
