package serial

const permissionHint = "add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again"
