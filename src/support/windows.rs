//! Windows' own file security, for what Unix does with owners and modes: a file's security
//! descriptor (who may read a key file, decided by [`super::security::foreign_file_access`])
//! and account names for the messages.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{
    DACL_SECURITY_INFORMATION, GetKernelObjectSecurity, LookupAccountSidW,
    OWNER_SECURITY_INFORMATION, SID_NAME_USE,
};

use super::security::Sid;

/// The owner and DACL of an open file, as a self-relative security descriptor: read from the
/// handle, so that the file checked is the file read.
#[allow(
    unsafe_code,
    reason = "GetKernelObjectSecurity has no safe wrapper; the buffer is sized by its first call"
)]
pub(crate) fn descriptor_of(file: &File) -> io::Result<Vec<u8>> {
    let handle = file.as_raw_handle() as HANDLE;
    let info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let mut needed = 0u32;
    // SAFETY: a null buffer of length 0 asks for the size only; `needed` is a valid u32.
    unsafe { GetKernelObjectSecurity(handle, info, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u8; needed as usize];
    // SAFETY: `buffer` holds `needed` writable bytes, the length passed.
    let ok = unsafe {
        GetKernelObjectSecurity(
            handle,
            info,
            buffer.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// `DOMAIN\name` of the account `sid` names, when this machine can tell.
#[allow(
    unsafe_code,
    reason = "LookupAccountSidW has no safe wrapper; both buffers are sized by the call"
)]
pub(crate) fn account_name(sid: &Sid) -> Option<String> {
    let bytes = sid.to_bytes();
    let mut name = vec![0u16; 256];
    let mut domain = vec![0u16; 256];
    let (mut name_len, mut domain_len) = (name.len() as u32, domain.len() as u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: `bytes` is a valid binary SID; the buffers hold the lengths passed, which the
    // call updates to what it wrote (without the terminating NUL).
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            bytes.as_ptr() as *mut _,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16_lossy(&name[..name_len as usize]);
    let domain = String::from_utf16_lossy(&domain[..domain_len as usize]);
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}
