"""NVIDIA's XID catalog as data: every code, NVIDIA's resolution for it, and what gpuobs does about it.

Source: NVIDIA, "Analyzing Xid Errors with the Xid Catalog",
https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html (the catalog for Ampere and
later, also published as https://docs.nvidia.com/Xid-Catalog.xlsx), read 2026-11-30. The page states
no version; the newest driver branch it names is R575 (CUDA 12.9), and its last code is 172. Taken
from it, as facts: each code, its mnemonic, the products it applies to (A100, H100, B100, GB200) and
its immediate-action resolution bucket, spelled as the catalog spells it. Descriptions are ours.
Codes 162-172 have no resolution bucket in the catalog; their mapping here is ours alone (`why`).

Our mapping starts from the resolution (RESOLUTIONS: severity, action, class) and departs from it
per code only with a stated reason (OVERRIDES). Relations between codes (RELATIONS) say which code
is a consequence of which (inhibit the consequence while its cause alerts), which supersedes which,
and which pair calls for a different action than either code alone (XID 48 with 63 or 64).
XID 154 carries the driver's own recovery action (RECOVERY_ACTIONS), which takes precedence.
A code outside the catalog (NVML reports 999 for one it cannot name) is an entry of class `unknown`.

Standard library only: the simulator and the exporter may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_URL = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
SOURCE_READ = "2026-11-30"
PRODUCTS = ("A100", "H100", "B100", "GB200")  # the catalog's "Applies to" columns, in order
NVML_UNKNOWN_XID = 999  # what NVML's event data holds for an XID it has no number for


@dataclass(frozen=True)
class Resolution:
    """Our default for one of NVIDIA's immediate-action buckets."""

    severity: str
    action: str
    xid_class: str  # our resolution class: which alert (and which receiver) a code belongs to
    meaning: str  # what the bucket asks for, in our words
    app_level: bool = False  # the job's owners act, not the fleet's operators


RESOLUTIONS: dict[str, Resolution] = {
    "RESTART_APP": Resolution("info", "notify", "application",
                              "restart the application; the GPU stays usable", app_level=True),
    "IGNORE": Resolution("info", "notify", "informational", "no action needed"),
    "RESET_GPU": Resolution("critical", "reset", "reset", "stop the GPU's processes and reset the GPU"),
    "RESTART_BM": Resolution("critical", "quarantine", "reboot",
                             "reboot the node (bare metal); the GPU is out of service until then"),
    "WORKFLOW_XID_48": Resolution("critical", "reset", "uncorrectable_memory",
                                  "alone: reset the GPU; with XID 63 or 64: drain, then reset"),
    "WORKFLOW_XID_45": Resolution("info", "notify", "application",
                                  "alone: restart the fabric manager; with another XID: follow that one",
                                  app_level=True),
    "WORKFLOW_NVLINK_ERR": Resolution("warning", "drain", "nvlink",
                                      "decode the error registers; a reset or reboot clears the link"),
    "WORKFLOW_NVLINK5_ERR": Resolution("warning", "drain", "nvlink",
                                       "decode the NVLink 5 error (interrupt info, status) for the action"),
    "CHECK_MECHANICALS": Resolution("critical", "quarantine", "mechanical",
                                    "check the board's seating and its connections"),
    "UPDATE_SWFW": Resolution("warning", "notify", "software", "update driver and firmware"),
    "RESTART_VM": Resolution("warning", "notify", "virtualization", "restart the VM that owns the GPU"),
    "CHECK_UVM": Resolution("warning", "notify", "virtualization",
                            "with UVM or vGPU in use reset the GPU, otherwise nothing"),
    "XID_154": Resolution("warning", "notify", "recovery_action",
                          "do what the XID's own recovery action says (see RECOVERY_ACTIONS)"),
    "CONTACT_SUPPORT": Resolution("warning", "notify", "unexpected",
                                  "not expected on current GPUs: ask NVIDIA support"),
}

# The catalog's text for XID 154's recovery action, NVML's number for it, and what it means for us.
RECOVERY_ACTIONS: dict[str, tuple[int, str, str]] = {
    "None": (0, "info", "notify"),
    "GPU Reset Required": (1, "critical", "reset"),
    "Node Reboot Required": (2, "critical", "quarantine"),
    "Drain P2P": (3, "warning", "drain"),
    "Drain and Reset": (4, "critical", "drain"),
}

CLASSES = ("application", "informational", "bus", "reset", "reboot", "uncorrectable_memory", "contained_memory",
           "nvlink", "mechanical", "software", "virtualization", "recovery_action", "unexpected", "unknown")


@dataclass(frozen=True)
class XidEntry:
    code: int
    mnemonic: str
    description: str
    applies_to: tuple[str, ...]  # products the catalog marks YES; none for unused codes
    resolution: str | None  # NVIDIA's immediate-action bucket; None where the catalog gives none
    family: str  # the GPU part or layer concerned
    severity: str
    action: str
    xid_class: str
    app_level: bool
    why: str = ""  # why our mapping departs from the resolution's default, or fills its absence

    @property
    def in_use(self) -> bool:
        return bool(self.applies_to)


# (code, mnemonic, applies to A100/H100/B100/GB200 as Y/N, resolution, family, our description)
_U = "Unused on Ampere and later GPUs"
_ROWS: tuple[tuple[int, str, str, str | None, str, str], ...] = (
    (1, "ROBUST_CHANNEL_FIFO_ERROR_FIFO_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (2, "ROBUST_CHANNEL_FIFO_ERROR_SW_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (3, "ROBUST_CHANNEL_FIFO_ERROR_UNK_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (4, "ROBUST_CHANNEL_FIFO_ERROR_CHANNEL_BUSY", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (5, "ROBUST_CHANNEL_FIFO_ERROR_RUNOUT_OVERFLOW", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (6, "ROBUST_CHANNEL_FIFO_ERROR_PARSE_ERR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (7, "ROBUST_CHANNEL_FIFO_ERROR_PTE_ERR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "YYYY", "RESTART_APP", "engine",
     "A channel stopped making progress and timed out"),
    (9, "ROBUST_CHANNEL_GR_ERROR_INSTANCE", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (10, "ROBUST_CHANNEL_GR_ERROR_SINGLE_STEP", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (11, "ROBUST_CHANNEL_GR_ERROR_MISSING_HW", "YYYY", "RESTART_APP", "application",
     "The application sent a command stream the GPU could not execute"),
    (12, "ROBUST_CHANNEL_GR_ERROR_SW_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (13, "ROBUST_CHANNEL_GR_EXCEPTION", "YYYY", "RESTART_APP", "application",
     "A kernel faulted in the graphics/compute engine (out-of-bounds access, illegal instruction)"),
    (14, "ROBUST_CHANNEL_FAKE_ERROR", "YYYY", "IGNORE", "driver", "An error injected on purpose from user space"),
    (15, "ROBUST_CHANNEL_SCANLINE_TIMEOUT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (16, "ROBUST_CHANNEL_VBLANK_CALLBACK_TIMEOUT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (17, "ROBUST_CHANNEL_PARAMETER_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (18, "ROBUST_CHANNEL_BUS_MASTER_TIMEOUT_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (19, "ROBUST_CHANNEL_DISP_MISSED_NOTIFIER", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (20, "ROBUST_CHANNEL_MPEG_ERROR_SW_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (21, "ROBUST_CHANNEL_ME_ERROR_SW_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (22, "ROBUST_CHANNEL_VP_ERROR_SW_METHOD", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (23, "ROBUST_CHANNEL_RC_LOGGING_ENABLED", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (24, "ROBUST_CHANNEL_GR_SEMAPHORE_TIMEOUT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (25, "ROBUST_CHANNEL_GR_ILLEGAL_NOTIFY", "YYYY", "RESTART_APP", "application",
     "The application's command stream asked for an illegal notification"),
    (26, "ROBUST_CHANNEL_FIFO_ERROR_FBISTATE_TIMEOUT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (27, "ROBUST_CHANNEL_VP_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (28, "ROBUST_CHANNEL_VP2_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (29, "ROBUST_CHANNEL_BSP_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (30, "ROBUST_CHANNEL_BAD_ADDR_ACCESS", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "YYYY", "RESTART_APP", "application",
     "The memory management unit caught an illegal address access (a GPU page fault)"),
    (32, "ROBUST_CHANNEL_PBDMA_ERROR", "YYYY", "RESTART_APP", "bus",
     "The DMA engine feeding commands over PCIe saw a corrupt stream"),
    (33, "ROBUST_CHANNEL_SEC_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (34, "ROBUST_CHANNEL_MSVLD_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (35, "ROBUST_CHANNEL_MSPDEC_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (36, "ROBUST_CHANNEL_MSPPP_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (37, "ROBUST_CHANNEL_FECS_ERR_UNIMP_FIRMWARE_METHOD", "YYYY", "IGNORE", "firmware",
     "The context-switch firmware got a method it does not implement"),
    (38, "ROBUST_CHANNEL_FECS_ERR_WATCHDOG_TIMEOUT", "YYYY", "IGNORE", "firmware",
     "The context-switch firmware's watchdog expired"),
    (39, "ROBUST_CHANNEL_CE0_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 0 exception"),
    (40, "ROBUST_CHANNEL_CE1_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 1 exception"),
    (41, "ROBUST_CHANNEL_CE2_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 2 exception"),
    (42, "ROBUST_CHANNEL_VIC_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "YYYY", "IGNORE", "application",
     "The driver stopped an application's work after the application faulted; the GPU is fine"),
    (44, "ROBUST_CHANNEL_GR_FAULT_DURING_CTXSW", "YYYY", "IGNORE", "engine",
     "The compute engine faulted while switching contexts"),
    (45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "YYYY", "WORKFLOW_XID_45", "application",
     "The driver tore down an application's work (abort, kill, reset or an earlier error)"),
    (46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", "YYYY", "RESET_GPU", "engine", "The GPU stopped processing work"),
    (47, "ROBUST_CHANNEL_NVENC0_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (48, "ROBUST_CHANNEL_GPU_ECC_DBE", "YYYY", "WORKFLOW_XID_48", "memory",
     "Uncorrectable (double-bit) ECC error in GPU memory or SRAM"),
    (49, "SILENT_RUNNING_CONSTANT_LEVEL_SET_BY_REGISTRY", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (50, "SILENT_RUNNING_LEVEL_TRANSITION_DUE_TO_RC_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (51, "SILENT_RUNNING_STRESS_TEST_FAILURE", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (52, "SILENT_RUNNING_LEVEL_TRANS_DUE_TO_TEMP_RISE", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (53, "SILENT_RUNNING_TEMP_REDUCED_CLOCKING", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (54, "SILENT_RUNNING_PWR_REDUCED_CLOCKING", "YYYN", "CHECK_MECHANICALS", "power",
     "The board's auxiliary power is not connected; it runs at reduced clocks"),
    (55, "SILENT_RUNNING_TEMPERATURE_READ_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (56, "DISPLAY_CHANNEL_EXCEPTION", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (57, "FB_LINK_TRAINING_FAILURE_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (58, "FB_MEMORY_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (59, "PMU_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (60, "ROBUST_CHANNEL_SEC2_ERROR", "YYYY", "RESTART_APP", "engine", "Security engine (SEC2) exception"),
    (61, "PMU_BREAKPOINT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (62, "PMU_HALT_ERROR", "YYYY", "RESET_GPU", "firmware", "An internal micro-controller halted"),
    (63, "INFOROM_DRAM_RETIREMENT_EVENT", "YYYY", "IGNORE", "memory",
     "A memory row was marked for remapping (a page for retirement); it takes effect at the next reset"),
    (64, "INFOROM_DRAM_RETIREMENT_FAILURE", "YYYY", "RESET_GPU", "memory",
     "Marking a memory row for remapping (a page for retirement) failed"),
    (65, "ROBUST_CHANNEL_NVENC1_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (66, "ROBUST_CHANNEL_FECS_ERR_REG_ACCESS_VIOLATION", "YYYY", "IGNORE", "driver",
     "The driver made an illegal register access"),
    (67, "ROBUST_CHANNEL_FECS_ERR_VERIF_VIOLATION", "YYYY", "IGNORE", "driver",
     "The driver made an illegal access the firmware refused"),
    (68, "ROBUST_CHANNEL_NVDEC0_ERROR", "YYYY", "RESTART_APP", "engine", "Video decoder 0 exception"),
    (69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "YYYY", "RESTART_APP", "application",
     "The application used a compute engine class wrongly"),
    (70, "ROBUST_CHANNEL_CE3_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 3 exception"),
    (71, "ROBUST_CHANNEL_CE4_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 4 exception"),
    (72, "ROBUST_CHANNEL_CE5_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 5 exception"),
    (73, "ROBUST_CHANNEL_NVENC2_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (74, "NVLINK_ERROR", "YYNN", "WORKFLOW_NVLINK_ERR", "interconnect",
     "An NVLink connection to another GPU or NVSwitch failed"),
    (75, "ROBUST_CHANNEL_CE6_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 6 exception"),
    (76, "ROBUST_CHANNEL_CE7_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 7 exception"),
    (77, "ROBUST_CHANNEL_CE8_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 8 exception"),
    (78, "VGPU_START_ERROR", "YYYY", "UPDATE_SWFW", "virtualization",
     "A vGPU could not start (guest and host drivers or vGPU type incompatible)"),
    (79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "YYYY", "RESTART_BM", "bus",
     "The GPU no longer answers on PCIe (fallen off the bus)"),
    (80, "PBDMA_PUSHBUFFER_CRC_MISMATCH", "YYNN", "RESTART_APP", "application",
     "Data sent to the GPU arrived corrupted (checksum mismatch)"),
    (81, "ROBUST_CHANNEL_VGA_SUBSYSTEM_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (82, "ROBUST_CHANNEL_NVJPG0_ERROR", "YYYY", "RESTART_APP", "engine", "JPEG engine 0 error"),
    (83, "ROBUST_CHANNEL_NVDEC1_ERROR", "YYYY", "RESTART_APP", "engine", "Video decoder 1 error"),
    (84, "ROBUST_CHANNEL_NVDEC2_ERROR", "YYYY", "RESTART_APP", "engine", "Video decoder 2 error"),
    (85, "ROBUST_CHANNEL_CE9_ERROR", "YYYY", "RESTART_APP", "engine", "Copy engine 9 exception"),
    (86, "ROBUST_CHANNEL_OFA0_ERROR", "YYYY", "RESTART_APP", "engine", "Optical flow accelerator exception"),
    (87, "NVTELEMETRY_DRIVER_REPORT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (88, "ROBUST_CHANNEL_NVDEC3_ERROR", "YYYY", "RESTART_APP", "engine", "Video decoder 3 error"),
    (89, "ROBUST_CHANNEL_NVDEC4_ERROR", "YYYY", "RESTART_APP", "engine", "Video decoder 4 error"),
    (90, "LTC_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (91, "RESERVED_XID", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (92, "EXCESSIVE_SBE_INTERRUPTS", "YYYY", "IGNORE", "memory", "Correctable (single-bit) ECC errors at a high rate"),
    (93, "INFOROM_ERASE_LIMIT_EXCEEDED", "YNNN", "IGNORE", "firmware",
     "An InfoROM update was refused: its provisioned wear limit is reached"),
    (94, "ROBUST_CHANNEL_CONTAINED_ERROR", "YYYY", "RESTART_APP", "memory",
     "A memory error contained to one application, which must restart; reset the GPU when convenient"),
    (95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "YYYY", "RESET_GPU", "memory",
     "A memory error that could not be contained: every application on the GPU is affected"),
    (96, "ROBUST_CHANNEL_NVDEC5_ERROR", "NYYY", "RESTART_APP", "engine", "Video decoder 5 error"),
    (97, "ROBUST_CHANNEL_NVDEC6_ERROR", "NYYY", "RESTART_APP", "engine", "Video decoder 6 error"),
    (98, "ROBUST_CHANNEL_NVDEC7_ERROR", "NYYY", "RESTART_APP", "engine", "Video decoder 7 error"),
    (99, "ROBUST_CHANNEL_NVJPG1_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 1 error"),
    (100, "ROBUST_CHANNEL_NVJPG2_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 2 error"),
    (101, "ROBUST_CHANNEL_NVJPG3_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 3 error"),
    (102, "ROBUST_CHANNEL_NVJPG4_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 4 error"),
    (103, "ROBUST_CHANNEL_NVJPG5_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 5 error"),
    (104, "ROBUST_CHANNEL_NVJPG6_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 6 error"),
    (105, "ROBUST_CHANNEL_NVJPG7_ERROR", "NYYY", "RESTART_APP", "engine", "JPEG engine 7 error"),
    (106, "SMBPBI_TEST_MESSAGE", "YYYY", "IGNORE", "firmware",
     "A test message from the out-of-band (SMBPBI) interface"),
    (107, "SMBPBI_TEST_MESSAGE_SILENT", "YYYY", "IGNORE", "firmware",
     "A silent test message from the out-of-band (SMBPBI) interface"),
    (108, "NVLINK_REMOTE_TRANSLATION_ERROR", "YYYY", "IGNORE", "interconnect",
     "NVLink remote address translation error (listed as unused)"),
    (109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "YYYY", "RESET_GPU", "engine", "A context switch timed out"),
    (110, "SEC_FAULT_ERROR", "NYYY", "RESET_GPU", "firmware",
     "A security fault; rare unless hardware failed or was changed"),
    (111, "BUNDLE_ERROR_EVENT", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (112, "DISP_SUPERVISOR_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (113, "DP_LT_FAILURE", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (114, "HEAD_RG_UNDERFLOW", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (115, "CORE_CHANNEL_REGS", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (116, "WINDOW_CHANNEL_REGS", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (117, "CURSOR_CHANNEL_REGS", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (118, "HEAD_REGS", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (119, "GSP_RPC_TIMEOUT", "YYYY", "RESET_GPU", "firmware",
     "The GPU System Processor (GSP) did not answer a driver call in time"),
    (120, "GSP_ERROR", "YYYY", "RESET_GPU", "firmware", "Code running on the GPU System Processor (GSP) failed"),
    (121, "C2C_ERROR", "NNNY", "IGNORE", "interconnect",
     "Corrected errors on the chip-to-chip link to a Grace CPU; retrain with a reset when convenient"),
    (122, "SPI_PMU_RPC_READ_FAIL", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (123, "SPI_PMU_RPC_WRITE_FAIL", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (124, "SPI_PMU_RPC_ERASE_FAIL", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (125, "INFOROM_FS_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (126, "ROBUST_CHANNEL_CE10_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 10 exception"),
    (127, "ROBUST_CHANNEL_CE11_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 11 exception"),
    (128, "ROBUST_CHANNEL_CE12_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 12 exception"),
    (129, "ROBUST_CHANNEL_CE13_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 13 exception"),
    (130, "ROBUST_CHANNEL_CE14_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 14 exception"),
    (131, "ROBUST_CHANNEL_CE15_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 15 exception"),
    (132, "ROBUST_CHANNEL_CE16_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 16 exception"),
    (133, "ROBUST_CHANNEL_CE17_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 17 exception"),
    (134, "ROBUST_CHANNEL_CE18_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 18 exception"),
    (135, "ROBUST_CHANNEL_CE19_ERROR", "NNYY", "RESTART_APP", "engine", "Copy engine 19 exception"),
    (136, "ALI_TRAINING_FAIL", "NYNN", "RESET_GPU", "interconnect", "NVLink link training failed"),
    (137, "NVLINK_PRIV_ERR", "YYYY", "IGNORE", "application",
     "An illegal peer-to-peer access over NVLink, usually by the application"),
    (138, "ROBUST_CHANNEL_DLA_ERROR", "NNNN", "CONTACT_SUPPORT", "unused", _U),
    (139, "ROBUST_CHANNEL_OFA1_ERROR", "NNYY", "RESTART_APP", "engine", "Optical flow accelerator 1 error"),
    (140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", "YYYY", "RESET_GPU", "memory",
     "Uncorrectable memory errors arrived in a way that kept the driver from retiring or remapping them"),
    (141, "ROBUST_CHANNEL_FAST_PATH_ERROR", "NYYY", "IGNORE", "driver", "CUDA fast path error"),
    (142, "ROBUST_CHANNEL_NVENC3_ERROR", "NNNY", "CONTACT_SUPPORT", "engine", "Video encoder 3 error"),
    (143, "GPU_INIT_ERROR", "NYYY", "RESET_GPU", "firmware", "The GPU failed to initialise"),
    (144, "NVLINK_SAW_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 SAW unit error"),
    (145, "NVLINK_RLW_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 RLW unit error"),
    (146, "NVLINK_TLW_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 TLW unit error"),
    (147, "NVLINK_TREX_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 TREX unit error"),
    (148, "NVLINK_NVLPW_CTRL_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 NVLPW control error"),
    (149, "NVLINK_NETIR_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect",
     "NVLink 5 NETIR error (link events, bit error rate, fatal link errors)"),
    (150, "NVLINK_MSE_ERROR", "NNYY", "WORKFLOW_NVLINK5_ERR", "interconnect", "NVLink 5 management engine error"),
    (151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR", "NYYY", "RESTART_VM", "virtualization",
     "Encryption key rotation failed (confidential computing)"),
    (152, "ROBUST_CHANNEL_DLA_SMMU_ERROR", "NNNN", "IGNORE", "engine", "Deep learning accelerator SMMU error"),
    (153, "ROBUST_CHANNEL_DLA_TIMEOUT", "NNNN", "IGNORE", "engine", "Deep learning accelerator timeout"),
    (154, "GPU_RECOVERY_ACTION_CHANGED", "YYYY", "XID_154", "recovery",
     "The driver changed the GPU's required recovery action (reported with the XID that caused it)"),
    (155, "NVLINK_SW_DEFINED_ERROR", "NNYY", "RESET_GPU", "interconnect",
     "An NVLink link went down on purpose (flagged intentional, e.g. to sleep)"),
    (156, "RESOURCE_RETIREMENT_EVENT", "NYYY", "RESET_GPU", "memory",
     "A faulty resource was marked for retirement; it takes effect at the next reset"),
    (157, "RESOURCE_RETIREMENT_FAILURE", "NYYY", "IGNORE", "memory",
     "No spare resources were left to retire a faulty one; the same error may recur"),
    (158, "GPU_FATAL_TIMEOUT", "YYYY", "RESET_GPU", "firmware", "A fatal timeout inside the GPU"),
    (159, "ROBUST_CHANNEL_CHI_NON_DATA_ERROR", "NNYY", "CHECK_UVM", "interconnect",
     "Non-data error on the coherent chip-to-chip (CHI) link"),
    (160, "CHANNEL_RETIREMENT_EVENT", "NNYY", "IGNORE", "driver", "A channel was retired"),
    (161, "CHANNEL_RETIREMENT_FAILURE", "NNYY", "IGNORE", "driver", "Retiring a channel failed"),
    (162, "PSHC_REENGAGED", "NNYY", None, "power", "Power smoothing circuitry works again"),
    (163, "PSHC_DISENGAGED", "NNYY", None, "power",
     "Power smoothing circuitry switched off (thermal events or a timeout); power swings follow"),
    (164, "PSHC_LOW_LIFETIME", "NNYY", None, "power", "Power smoothing circuitry near the end of its lifetime"),
    (165, "PSHC_ZERO_LIFETIME", "NNYY", None, "power",
     "Power smoothing circuitry lifetime used up; the driver disables it and power swings follow"),
    (166, "NVLINK_SECURE_CRYPTO_ERR", "NNYY", None, "interconnect",
     "Confidential-computing traffic on an NVLink not yet set up for encryption"),
    (167, "PCIE_FATAL_TIMEOUT", "NYYY", None, "bus", "A fatal PCIe timeout"),
    (168, "REDUCED_GPU_MEMORY_CAPACITY", "YYYY", None, "memory",
     "Errors in the write-protected memory region reduce usable memory (seen with ECC off)"),
    (169, "SEC2_HALT_ERROR", "NYYY", None, "firmware", "The security micro-controller (SEC2) halted"),
    (170, "NVLINK_SECURE_OTHER", "NNYY", None, "interconnect", "An NVLink interrupt in confidential-computing mode"),
    (171, "UNCORRECTABLE_DRAM_ERROR", "YYYY", None, "memory", "Detail of an XID 48: the error was in DRAM"),
    (172, "UNCORRECTABLE_SRAM_ERROR", "YYYY", None, "memory", "Detail of an XID 48: the error was in on-chip SRAM"),
)


@dataclass(frozen=True)
class Override:
    severity: str
    action: str
    xid_class: str
    why: str
    app_level: bool = False


# Where our mapping departs from the resolution's default, or the catalog gives none (162-172).
OVERRIDES: dict[int, Override] = {
    32: Override("warning", "notify", "bus",
                 "NVIDIA's trigger text puts it on PCIe signal quality, not on the application"),
    43: Override("info", "notify", "application", "NVIDIA: the application faulted and the GPU is healthy",
                 app_level=True),
    64: Override("critical", "quarantine", "uncorrectable_memory",
                 "a failed remap leaves a bad row in service: NVIDIA's memory error guide counts it towards "
                 "replacing the board, so a reset alone does not return the GPU to service"),
    92: Override("warning", "notify", "uncorrectable_memory",
                 "NVIDIA ignores it, but a high correctable-error rate precedes uncorrectable ones "
                 "(as GPUEccCorrectableSpike says)"),
    94: Override("warning", "drain", "contained_memory",
                 "a hardware memory error, not the application's: NVIDIA asks for a reset when convenient, "
                 "which is draining"),
    137: Override("info", "notify", "application",
                  "NVIDIA's XID 137 flow: typically the application's bug, investigated like XID 31", app_level=True),
    156: Override("warning", "reset", "uncorrectable_memory",
                  "like a pending row remap: work may go on and the retirement takes effect at the next reset"),
    162: Override("info", "notify", "informational", "no catalog action; good news"),
    163: Override("warning", "notify", "informational", "no catalog action; power swings reach the facility"),
    164: Override("warning", "notify", "informational", "no catalog action; plan a replacement"),
    165: Override("warning", "notify", "informational", "no catalog action; power swings from now on"),
    166: Override("warning", "notify", "nvlink", "no catalog action; confidential-computing set-up is wrong"),
    167: Override("critical", "reset", "reset", "no catalog action; a fatal PCIe timeout leaves the GPU unusable"),
    168: Override("warning", "notify", "informational", "no catalog action; NVIDIA: enable ECC or reboot"),
    169: Override("critical", "reset", "reset",
                 "no catalog action; a halted micro-controller is handled like XID 62 (RESET_GPU)"),
    170: Override("info", "notify", "informational", "no catalog action; confidential-computing mode only"),
    171: Override("info", "notify", "informational", "no catalog action; a detail of XID 48, which carries the action"),
    172: Override("info", "notify", "informational", "no catalog action; a detail of XID 48, which carries the action"),
}


def _entry(row) -> XidEntry:
    code, mnemonic, applies, resolution, family, description = row
    products = tuple(p for p, flag in zip(PRODUCTS, applies, strict=True) if flag == "Y")
    override = OVERRIDES.get(code)
    if override is not None:
        return XidEntry(code, mnemonic, description, products, resolution, family, override.severity,
                        override.action, override.xid_class, override.app_level, override.why)
    default = RESOLUTIONS[resolution]
    return XidEntry(code, mnemonic, description, products, resolution, family, default.severity, default.action,
                    default.xid_class, default.app_level)


CATALOG: dict[int, XidEntry] = {row[0]: _entry(row) for row in _ROWS}


def lookup(code: int) -> XidEntry:
    """The catalog's entry, or one of class `unknown`: a code we cannot name still alerts, as such."""
    known = CATALOG.get(code)
    if known is not None:
        return known
    return XidEntry(code, "UNKNOWN", "A code outside NVIDIA's catalog", (), None, "unknown", "warning", "notify",
                    "unknown", False, "not in the catalog: someone has to look it up")


@dataclass(frozen=True)
class Relation:
    """`follow_on`: `target` is a consequence of `sources` (inhibit it while a source alerts on the GPU);
    `supersedes`: `sources` call for everything `target` does and more (inhibit `target`);
    `combination`: `target` with any of `sources` on one GPU calls for `severity`/`action` together."""

    kind: str
    target: int
    sources: tuple[int, ...]
    why: str
    severity: str = ""
    action: str = ""


def _hardware_faults() -> tuple[int, ...]:
    """In-use codes of the GPU itself that end applications: their teardown (XID 45) and stopped
    channels (XID 43) follow them."""
    return tuple(c for c, e in CATALOG.items()
                 if e.in_use and not e.app_level and (e.action != "notify" or e.resolution == "RESTART_APP"))


def _app_faults() -> tuple[int, ...]:
    return tuple(c for c, e in CATALOG.items() if e.in_use and e.app_level and c not in (43, 45))


RELATIONS: tuple[Relation, ...] = (
    Relation("follow_on", 43, _app_faults() + _hardware_faults(),
             "the driver stops the faulting application's channels after the fault itself"),
    Relation("follow_on", 45, _app_faults() + _hardware_faults(),
             "the driver tears down applications after an earlier error; NVIDIA: follow the other XID"),
    Relation("follow_on", 63, (48, 94, 95),
             "the row remap is the driver's repair of the uncorrectable error it follows"),
    Relation("follow_on", 171, (48,), "a detail of the XID 48 it accompanies"),
    Relation("follow_on", 172, (48,), "a detail of the XID 48 it accompanies"),
    Relation("supersedes", 94, (95,),
             "contained vs uncontained: an uncontained error needs the reset a contained one only recommends"),
    Relation("combination", 48, (63, 64),
             "NVIDIA's XID 48 workflow: alone, reset the GPU; with a remap event or failure, drain then reset",
             "critical", "drain"),
)


def follow_ons(code: int) -> tuple[int, ...]:
    """The codes that follow this one (its consequences), as the driver would log them after it."""
    return tuple(r.target for r in RELATIONS if r.kind == "follow_on" and code in r.sources)


def codes_of_class(xid_class: str) -> tuple[int, ...]:
    return tuple(c for c, e in CATALOG.items() if e.xid_class == xid_class)


def check() -> list[str]:
    """Inconsistencies in the tables above (the unit tests assert there are none)."""
    from gpuobs.alerts import ACTIONS, SEVERITIES  # here: the alert catalog's XID tiers import this module

    problems = []
    for name, r in RESOLUTIONS.items():
        if r.severity not in SEVERITIES or r.action not in ACTIONS or r.xid_class not in CLASSES:
            problems.append(f"resolution {name}: {r.severity}/{r.action}/{r.xid_class}")
    for entry in CATALOG.values():
        if entry.resolution is None and entry.code not in OVERRIDES:
            problems.append(f"XID {entry.code}: no catalog resolution and no mapping of ours")
        if entry.resolution is not None and entry.resolution not in RESOLUTIONS:
            problems.append(f"XID {entry.code}: resolution {entry.resolution} unmapped")
        if entry.severity not in SEVERITIES or entry.action not in ACTIONS or entry.xid_class not in CLASSES:
            problems.append(f"XID {entry.code}: {entry.severity}/{entry.action}/{entry.xid_class}")
        if entry.app_level and entry.severity != "info":
            problems.append(f"XID {entry.code}: application-level but {entry.severity}")
    for text, (_, severity, action) in RECOVERY_ACTIONS.items():
        if severity not in SEVERITIES or action not in ACTIONS:
            problems.append(f"XID 154 action {text}: {severity}/{action}")
    for relation in RELATIONS:
        missing = [c for c in (relation.target, *relation.sources) if c not in CATALOG]
        if missing:
            problems.append(f"{relation.kind} of XID {relation.target}: codes {missing} not in the catalog")
        if relation.target in relation.sources:
            problems.append(f"{relation.kind} of XID {relation.target}: its own source")
        if relation.kind == "combination" and (relation.severity not in SEVERITIES or relation.action not in ACTIONS):
            problems.append(f"combination of XID {relation.target}: {relation.severity}/{relation.action}")
    return problems
