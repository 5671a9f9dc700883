"""Testers of the paper's ``ours`` strategy: what generates the adversarial validation data.

* :mod:`searchers.testers.base` -- the :class:`~searchers.testers.base.Tester` interface that
  Algorithm 1 (:mod:`searchers.strategies.ours`) calls: generated validation batch, upper-level step,
  lower-level step, diagnostics, state;
* :mod:`searchers.testers.gan` -- the GAN tester (Eq. 5, 8-9, 11, 15-16) on the class-conditional
  GANs of :mod:`searchers.testers.fqgan` (FQ-GAN, SN-GAN, BigGAN-style, learnable hyperparameters B;
  their feature quantisation in :mod:`searchers.testers.quantizer`);
* :mod:`searchers.testers.augment` -- the augmentation tester (Eq. 6) on the DADA policy P of
  :mod:`searchers.testers.dada` (batched tensor ops);
* :mod:`searchers.testers.selection` -- the pretrain ablation's selection variables (Eq. 19);
* :mod:`searchers.testers.auxiliary` -- the auxiliary model V (ResNet-18, or a head on the
  discriminator's trunk under parameter tying, Sec. 3.3) and its stage-III updates (Eq. 9);
* :mod:`searchers.testers.build` / :mod:`searchers.testers.pretrain` -- a tester from the ``ours``
  config, and its pretraining and cache (Sec. 3.3, App. A.1);
* :mod:`searchers.testers.diagnostics` -- reference classifier, probe and sample grids (Fig. 1, 2);
* :mod:`searchers.testers.regularizers` -- the decorrelation regulariser (DeCov, Cogswell et al. 2015);
* :mod:`searchers.testers.functional` -- one-step unrolled copies with ``torch.func.functional_call``.
"""
