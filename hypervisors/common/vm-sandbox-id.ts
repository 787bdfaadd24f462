/** Sandbox ids a VM driver accepts: they land in directory, socket and domain names, so only characters safe in all. */
export const VM_SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
