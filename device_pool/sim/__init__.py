"""The virtual phone: a stand-in Android device that speaks the real adb protocol (docs/virtual-phone.md)."""
