"""LAVA jobs for rvforge images: what ``rvforge lava job|run|results`` build on.

A job boots an initramfs on LAVA's ``qemu`` device type with a machine profile's CPU,
memory, CPUs and kernel (:mod:`.plan`, :mod:`.job`), runs one command through LAVA's
``interactive`` test action on the shell rvforge's ``/init`` starts (``rvforge.shell=1``),
and reports the command's exit status as a LAVA test case. :mod:`.device` writes the device
dictionary ``lava-run`` needs on this machine, :mod:`.schema` checks a job against LAVA's own
schema, :mod:`.dispatch` runs ``lava-run`` and :mod:`.results` reads LAVA's logs and results
back into rvforge's run rows.
"""
