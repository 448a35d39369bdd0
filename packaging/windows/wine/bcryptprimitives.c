/*
 * bcryptprimitives.dll for Wine 8.0, the Wine in Debian 12, which lacks it.
 *
 * Go 1.24 and later get their random numbers from ProcessPrng in
 * bcryptprimitives.dll, which every Windows that Go supports (10 and later) has;
 * without it a Go program stops at start-up ("bcryptprimitives.dll not found").
 * Wine gained the DLL after 8.0. This one exists only so that CI can run the real
 * fieldflash.exe under Wine 8.0: it answers ProcessPrng from bcrypt.dll's system
 * RNG, as Windows' own does. It is never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
