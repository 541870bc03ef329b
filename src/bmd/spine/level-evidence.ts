/** What the engine saw at each level of the column, as the naming (labels.ts) reads it. */
export interface LevelEvidence {
  /** Rib heads traced to this level, per side. */
  ribLeft: boolean;
  ribRight: boolean;
  /** The lateral rib band beside this level lies inside the scan, per side ("no rib" then means no rib). */
  bandLeft: boolean;
  bandRight: boolean;
  /**
   * How deep behind the body centre the field of view shows the rib band beside this level, mm, per side
   * (SLAB_U_MM's back, 55, where nothing cuts it; -1 with no slice of it in the scan). Where a small field cuts the
   * band's back (bandLeft/Right false), a rib seen at a neighbouring level no deeper says this one's would show.
   */
  bandDepthLeftMm?: number;
  bandDepthRightMm?: number;
  /**
   * A short rib crosses the inner band (near the spine only) within this level, apart from the lateral
   * band's ribs: what a first rib that curves forward early looks like. Used only just above those ribs.
   */
  shortRibLeft?: boolean;
  shortRibRight?: boolean;
  /**
   * The band below this level, where its rib would cross if it descends steeply as a twelfth rib does, is in
   * view too (false at the bottom edge of a scan): without it a rib-less look may be a twelfth rib cut off.
   */
  ribDescentInView?: boolean;
  /**
   * A rib traced to within this level was given to no level: one rib per level and side leaves it over, as
   * when a disc is missed and two levels read as one (hard phantom 20013: T7 and T8 shared two pieces with
   * T6, and T7's ribs were left over).
   */
  unassignedRib?: boolean;
  /** A whole level's length over the column's trend (1: as its neighbours); NaN for a piece cut by the scan. */
  lengthOverTrend?: number;
  /**
   * This level and the next one up each hold their own transverse process pair, a level apart
   * (transverse-processes.ts): the boundary between them parts two vertebrae, whether its disc shows or not.
   */
  cranialPartedByProcesses?: boolean;
  /**
   * Lung lies beside the body (air over half of the paravertebral region: lung-beside.ts): a thoracic level below
   * the lung apices, so not C7, whose sides hold the neck's muscles. Undefined where too little is in view.
   */
  lungBeside?: boolean;
  /** Disc at both ends (a whole level); for an open end piece, whether it holds most of a body. */
  whole: boolean;
  /** A boundary of this level was inferred across a run with no visible disc. */
  caudalInferred: boolean;
  cranialInferred: boolean;
  /** This piece is the sacrum (below the last lumbar disc, with alae). */
  sacral: boolean;
  /** Too little of a body to name (an endplate and disc at the scan edge). */
  stub: boolean;
  /**
   * Cut by the scan edge with less than a whole level in view: too little to show that it bears no rib. A rib
   * crosses the band at the top of its own level or above it, so most of a level can be in view without its
   * rib (the first rib leaves the top of T1; AMOS 0336 cropped through T9: the cut T9 read as a rib-less "C7",
   * and a firm first-rib count put "T1" on T10).
   */
  partial?: boolean;
}
