"""Testers of the paper's ``ours`` strategy: what generates the adversarial validation data.

* :mod:`searchers.testers.fqgan` -- class-conditional GANs at CIFAR scale (FQ-GAN, SN-GAN, BigGAN-style)
  with learnable hyperparameters B that enter the generator loss differentiably (paper Eq. 5, 8, 15-16);
* :mod:`searchers.testers.augment` -- the DADA augmentation policy P (paper Eq. 6), batched tensor ops;
* :mod:`searchers.testers.auxiliary` -- the auxiliary model V (ResNet-18, or a head on the
  discriminator's trunk under parameter tying, Sec. 3.3) and the reference classifier (Fig. 1 left);
* :mod:`searchers.testers.regularizers` -- the decorrelation regulariser (DeCov, Cogswell et al. 2015);
* :mod:`searchers.testers.functional` -- one-step unrolled copies with ``torch.func.functional_call``.
"""
