"""The embedded demo head, sculpted by our own deterministic script (no licensed model may ship).

`engine.head.sculpt.build.build(SculptConfig())` returns the FLAME-layout model and landmark embedding;
`python -m engine.head.sculpt` writes them to resources/demo_head/. Modules: sdf (the signed-distance
sculpt), mesh and decimate (meshing), labels (components), rig (skinning, joints, landmarks), shapes
(identity and expression blendshapes). Nothing is imported here: the demo avatar reads only `labels`,
and meshing pulls in scikit-image.
"""
